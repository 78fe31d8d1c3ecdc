"""The learning loop's cloud side: corrections in, candidates judged, promotions decided.

- ``records``: the documents the loop passes between its stages (assessments, training job specs,
  job records, shadow results); one schema per stage boundary.
- ``quality``: guardrails and routing for one correction (pure functions, no I/O).
- ``ingest``: reads new feedback from the feedback bucket, deduplicates, stores assessments.
- ``job_store``: training-job records as ``training/jobs/<id>/job.json`` in the models bucket
  (created once per trigger window, updated with optimistic locking).
- ``gate``: the evaluation gate (candidate vs stable on the same audio).
- ``trigger`` / ``launchers``: thresholds and schedule decide; a local process or a SageMaker
  training job runs ``models.learning.job``.
- ``shadow``: the batch function's sampled shadow inference, stored apart from user transcripts.
- ``promotion``: shadow evidence and fleet health move a candidate to canary, then stable, or out.

Nothing here imports torch: training lives in ``models.learning`` and runs as its own job.
"""
