"""EdgeScribe on AWS, as a Pulumi program (``pulumi up`` runs ``infra/__main__.py``).

Layout, one concern per module:

* ``stack_config``   — the stack's settings (``edgescribe:*`` config keys), validated up front;
* ``catalog``        — the four functions and the two Lambda images, as plain data (no Pulumi), shared by
                       the program and the image build step;
* ``access``         — what each function may touch, as a table; every IAM policy is generated from it;
* ``iam``            — policy-document builders (TLS-only bucket policies, assume-role documents);
* ``naming``         — names of infra-only resources, in the settings' ``edgescribe-<stack>-`` scheme;
* ``components/``    — one ``pulumi.ComponentResource`` per part of the platform;
* ``program``        — wires the components together and names the stack outputs;
* ``bundle/``        — stages and checks the Lambda image build contexts (``python -m infra.bundle``).

Every bucket, queue and table name comes from ``edgescribe.settings.ResourceNames`` for the Pulumi
stack name, the same module the functions and the local stack read, so the cloud and the laptop
never disagree on a name.
"""
