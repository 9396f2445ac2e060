# The nomadmesh control plane for a real cluster: `nomadmesh xds serve` in a stock Python image,
# reading the node's Consul agent and registered as `nomadmesh-xds`, the service injected sidecars
# resolve. It is never meshed itself. (Python: `nomadmesh.xds.job.control_plane_job(driver="docker")` differs
# only in running a preinstalled `nomadmesh` binary.)
job "nomadmesh-xds" {
  datacenters = ["dc1"]

  group "xds" {
    count = 2

    meta = {
      "nomadmesh.mesh" = "false"
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
      driver = "docker"

      config {
        image        = "python:3.12-slim"
        network_mode = "host"
        command      = "sh"
        args = [
          "-c",
          "pip install --quiet 'nomadmesh[xds]' && exec nomadmesh xds serve --listen 0.0.0.0:${NOMAD_PORT_grpc} --consul ${attr.unique.network.ip-address}:8500 --metrics 0.0.0.0:${NOMAD_PORT_metrics}",
        ]
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
