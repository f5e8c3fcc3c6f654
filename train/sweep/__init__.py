"""``robocell sweep``: hyperparameter search on Ray Tune (Optuna TPE, ASHA); see tuner.py."""
