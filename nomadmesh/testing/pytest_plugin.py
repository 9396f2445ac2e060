"""pytest plugin (entry point `nomadmesh`): fixtures for the Nomad and Consul emulators."""
