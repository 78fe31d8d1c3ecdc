"""Inference backends for the cloud functions: Triton (gRPC, HTTP, SageMaker) behind one protocol.

Every backend here implements :class:`models.runtime.backend.InferenceBackend` (16 kHz waveforms
in, per-utterance log-probs out), so ``models.runtime.transcriber.Transcriber`` turns any of them
into transcripts, and :class:`models.runtime.fallback.FallbackBackend` puts in-process
onnxruntime behind them. :func:`functions.inference.selection.transcriber_from_environment` is
the one call a function makes.

* ``triton_batches`` — length bucketing + request splitting shared by all Triton clients;
* ``triton_grpc`` / ``triton_http`` — a Triton server over gRPC or HTTP, one client per thread;
* ``sagemaker_triton`` — a Triton container behind a SageMaker endpoint (``invoke_endpoint``);
* ``selection`` — which backend a function uses, from its environment;
* ``channel_following`` — the in-process model follows a channel (``EDGESCRIBE_MODEL_CHANNEL``);
* ``published_models`` — download, verify and load a published version (channel following, shadow).
"""
