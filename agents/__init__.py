"""Complete pcctrl agents in the Stable-Baselines3 shape (installed as ``pcctrl.agents``)."""
