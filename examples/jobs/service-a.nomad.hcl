# The original design's service-a: two instances of a small HTTP app behind its own Envoy sidecar.
job "service-a" {
  datacenters = ["dc1"]
  type        = "service"

  group "service-a" {
    count = 2

    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }

    service {
      name = "service-a"
      port = "http"
      tags = ["api"]

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "service-a-app" {
      driver = "docker"

      config {
        image = "service-a:1.0"
        ports = ["http"]
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
