# Host and CSI volumes, volume mounts, a sticky ephemeral disk and a leader task.
job "postgres" {
  datacenters = ["dc1"]

  group "db" {
    volume "data" {
      type      = "host"
      source    = "pg-data"
      read_only = false
    }

    volume "backups" {
      type            = "csi"
      source          = "pg-backups"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
      per_alloc       = true
    }

    ephemeral_disk {
      size   = 500
      sticky = true
    }

    network {
      port "db" {
        static = 5432
      }
    }

    task "postgres" {
      driver = "docker"
      leader = true

      config {
        image = "postgres:16"
        ports = ["db"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/postgresql/data"
      }

      volume_mount {
        volume      = "backups"
        destination = "/backups"
        read_only   = false
      }

      resources {
        cpu        = 1000
        memory     = 1024
        memory_max = 2048
      }
    }
  }
}
