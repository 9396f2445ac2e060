# service-a for local runs: a raw_exec Python app (examples/apps/service_a.py) on host networking.
# The Envoy sidecar is injected by nomadmesh (`nomadmesh demo`, or `nomadmesh run` with a mesh).
variable "python" {
  type    = string
  default = "python3"
}

variable "apps" {
  type        = string
  description = "Absolute path of examples/apps"
  default     = "/opt/nomadmesh/examples/apps"
}

variable "count" {
  type    = number
  default = 2
}

job "service-a" {
  datacenters = ["dc1"]
  type        = "service"

  group "service-a" {
    count = var.count

    network {
      port "http" {}
    }

    service {
      name = "service-a"
      port = "http"
      tags = ["demo"]

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    restart {
      attempts = 3
      delay    = "1s"
      interval = "1m"
      mode     = "fail"
    }

    task "service-a-app" {
      driver = "raw_exec"

      config {
        command = var.python
        args    = ["${var.apps}/service_a.py"]
      }

      env {
        PYTHONUNBUFFERED = "1"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
