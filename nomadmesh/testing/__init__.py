"""Local, real-HTTP emulators of the Nomad and Consul APIs for tests, demos and notebooks."""
