"""One ``pulumi.ComponentResource`` per part of the platform.

Each component parents every resource it creates to itself (so ``pulumi stack`` shows the platform as
a tree and a component can be reasoned about alone), takes what it needs from other components as
constructor arguments, and registers the outputs other parts and the stack use.
"""
