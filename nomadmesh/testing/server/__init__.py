"""The emulated Nomad server, split as Nomad's is: state store, reconciler, feasibility and
placement, schedulers, worker, deployment watcher, periodic dispatcher and the Job RPCs."""
