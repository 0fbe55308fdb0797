"""Local servers cotforge starts, waits for and stops by PID (vLLM, Argilla), and the per-user cache folders
they and the models live in."""
