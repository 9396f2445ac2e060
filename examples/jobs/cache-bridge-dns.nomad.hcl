# Bridge networking with DNS settings, a group-level shutdown delay and scaling bounds.
job "cache" {
  datacenters = ["dc1"]

  group "redis" {
    count          = 3
    shutdown_delay = "10s"

    scaling {
      min     = 1
      max     = 10
      enabled = true

      policy {
        cooldown = "1m"
      }
    }

    network {
      mode     = "bridge"
      hostname = "redis"

      dns {
        servers = ["10.0.0.53"]
        options = ["ndots:2"]
      }

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis"
      port     = "redis"
      provider = "nomad"
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:7"
        ports = ["redis"]
      }

      logs {
        max_files     = 3
        max_file_size = 5
      }

      kill_signal = "SIGTERM"
    }
  }
}
