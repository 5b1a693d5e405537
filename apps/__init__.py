"""Gradio web demos of dqa."""
