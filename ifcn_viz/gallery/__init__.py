"""The gallery: every view rendered for an example image (``ifcn-viz gallery``, ``make gallery``).

It lives beside the CLI, not in :mod:`ifcn_viz.viz`, because it loads models and generates scenes; ``viz`` itself
only draws what it is given.
"""
