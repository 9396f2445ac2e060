"""The emulated Nomad clients: alloc runners, task runners, health, service registration."""
