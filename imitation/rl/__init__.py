"""Training: PPO with rsl-rl-lib's OnPolicyRunner in the env (train.py), on one process or several ranks
(distributed.py: the torch.distributed set-up; it imports neither genesis nor the env)."""
