"""Training an E-CMA model: the loop, losses, the EMA teacher and its pseudo masks, variants, checkpoints, curves."""
