"""Studies: many trainings from one YAML file (grids, baselines), run by a process pool or Ray."""
