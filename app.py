"""The InstanceFCN explorer with the shipped model, the way Gradio apps are deployed (e.g. a Hugging Face Space).

``python app.py`` serves it on 127.0.0.1:7860, or on ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` when set;
never a public share link.  ``demo`` is defined at import, so tools that import this file find it.
"""

import sys

from ifcn_viz.app import build_demo, launch
from ifcn_viz.app.commands import serve_or_explain

demo = build_demo(checkpoint="shipped")

if __name__ == "__main__":
    sys.exit(serve_or_explain(lambda: launch(demo), "python app.py"))
