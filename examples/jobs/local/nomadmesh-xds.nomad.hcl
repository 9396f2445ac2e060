# The nomadmesh control plane for local runs: `nomadmesh xds serve` as a raw_exec task, reading
# Consul and registered as the Consul service `nomadmesh-xds` that injected sidecars look up.
variable "nomadmesh" {
  type        = string
  description = "The nomadmesh command (e.g. the venv's bin/nomadmesh)"
  default     = "nomadmesh"
}

variable "consul" {
  type    = string
  default = "127.0.0.1:8500"
}

job "nomadmesh-xds" {
  datacenters = ["dc1"]
  type        = "service"

  group "xds" {
    count = 1

    meta = {
      "nomadmesh.mesh" = "false" # the control plane gets no sidecar
    }

    network {
      port "grpc" {}
      port "metrics" {}
    }

    service {
      name = "nomadmesh-xds"
      port = "grpc"
      tags = ["nomadmesh", "xds"]

      check {
        type     = "tcp"
        port     = "grpc"
        interval = "5s"
        timeout  = "2s"
      }
    }

    service {
      name = "nomadmesh-xds-metrics"
      port = "metrics"
      tags = ["prometheus", "nomadmesh"]

      check {
        type     = "http"
        path     = "/healthz"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "xds" {
      driver = "raw_exec"

      config {
        command = var.nomadmesh
        args = [
          "xds", "serve",
          "--listen", "${NOMAD_ADDR_grpc}",
          "--consul", var.consul,
          "--metrics", "${NOMAD_ADDR_metrics}",
          "--mtls", # sidecars talk mTLS with SPIFFE certificates from this control plane
        ]
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
