"""Triton model repositories for EdgeScribe: one spec, two renderings.

* ``spec`` — :class:`~models.triton.spec.TritonModelSpec`, built from a released model version
  (``model.onnx`` + ``manifest.json``): tensor names/types from the ONNX contract, batching,
  length buckets, instances, TensorRT settings.
* ``render`` — the two ``config.pbtxt`` renderings of one spec: *production*
  (``platform: "onnxruntime_onnx"``, KIND_GPU, TensorRT/CUDA accelerators) and *local*
  (``backend: "python"``, KIND_CPU, running the same ONNX through onnxruntime in ``model.py``).
* ``repository`` — writes a repository directory; ``publish`` uploads the production one to the
  models bucket where Triton reads ``s3://`` repositories.
* ``python_model`` — the ``model.py`` the local rendering ships (copied verbatim).
"""
