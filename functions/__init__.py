"""Cloud functions: one module per function, thin handlers over plain, testable functions.

``functions.common`` holds what several functions share (AWS clients, S3 event parsing, error
records, transcript storage); each handler module (``functions.batch_transcription``, ...) is what a
Lambda's ``handler`` setting points at.
"""
