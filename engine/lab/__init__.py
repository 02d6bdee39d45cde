"""The guided lab: NVIDIA's "Image Classification with DIGITS" steps (guide.py), each run as a
job and compared on the lab's probe board."""
