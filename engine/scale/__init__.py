"""Scale: one run over the devices of one machine, and a parent's children over GPUs and machines.

- `strategy`: `--strategy` (tf.distribute.MirroredStrategy over the visible GPUs) for one run.
- `child`: the entry point that trains one child run of a parent in its own process.
- `parallel`: `--parallel N` runs a parent's children as N processes, one per GPU.
- `ray_executor`: `--executor ray` submits each child as a Ray task to an existing cluster.

Nothing here imports TensorFlow or Ray at module level.
"""
