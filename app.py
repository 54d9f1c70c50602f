"""Serve the InstanceFCN explorer on http://127.0.0.1:7860 with the shipped model (`python app.py`)."""

from ifcn_viz.app import build_demo
from ifcn_viz.app.demo import launch
from ifcn_viz.inference.predictor import Predictor

if __name__ == "__main__":
    launch(build_demo(Predictor.from_checkpoint("shipped")), host="127.0.0.1", port=7860)
