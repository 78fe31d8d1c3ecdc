"""Training data: the real-speech manifests, the synthetic corpus builder and the audio cache."""
