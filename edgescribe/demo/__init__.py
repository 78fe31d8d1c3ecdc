"""``edgescribe demo``: the platform end to end on one machine, as a list of steps.

Each step (``DemoStep``) gets the running local stack and the sample clips, prints a short header
and then real output (transcripts, scores, error records), and raises ``DemoStepError`` when what it
shows did not happen. Steps are listed in ``edgescribe.demo.registry.STEP_MODULES``: to add one (the
HTTP API, Triton, an edge device), write a module with a ``STEP`` object and append its name there.
"""
