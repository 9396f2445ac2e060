# service-b calls service-a through its sidecar's egress listener at /hi_a.
job "service-b" {
  datacenters = ["dc1"]

  group "service-b" {
    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }

    meta = {
      "nomadmesh.upstreams" = "service-a=/hi_a"
    }

    service {
      name = "service-b"
      port = "http"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "service-b-app" {
      driver = "docker"

      config {
        image = "service-b:1.0"
        ports = ["http"]
      }

      env {
        LOG_LEVEL = "info"
      }
    }
  }
}
