"""The second engine: a shipped policy bundle run and judged in MuJoCo, with no Genesis import anywhere.

    model.py      the Go2 in MuJoCo from the URDF the Genesis env loads, with the robot config's actuator model
    runner.py     MujocoRunner: episodes of a bundle (PD torques at the physics rate, the shared observation),
                  nominal, "realistic actuators" or randomized physics
    evaluate.py   `imitation eval --sim mujoco`: the episodes judged by the same success rule and metrics
"""
