# The original design's edge router for a real cluster: a docker app whose sidecar's egress listener
# routes /hi_a to service-a and /hi_b to service-b. Build the image from examples/apps/edge_router.py.
# Inject the sidecar with `nomadmesh run --inject examples/jobs/edge-router.nomad.hcl`.
job "edge-router" {
  datacenters = ["dc1"]

  group "edge-router" {
    count = 2

    meta = {
      "nomadmesh.upstreams" = "service-a=/hi_a,service-b=/hi_b"
    }

    network {
      mode = "bridge"

      port "http" {
        static = 8080
        to     = 8080
      }
    }

    service {
      name = "edge-router"
      port = "http"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "edge-router-app" {
      driver = "docker"

      config {
        image = "edge-router:1.0"
        ports = ["http"]
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
