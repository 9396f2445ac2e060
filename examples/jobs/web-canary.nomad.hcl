# Placement rules and a canary update strategy with auto-revert.
job "web" {
  datacenters = ["us-east-1", "us-west-2"]
  node_pool   = "web"

  update {
    max_parallel      = 2
    canary            = 1
    min_healthy_time  = "15s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
    auto_promote      = false
  }

  constraint {
    attribute = "${attr.cpu.arch}"
    operator  = "="
    value     = "amd64"
  }

  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }

  affinity {
    attribute = "${node.class}"
    value     = "large"
    weight    = 75
  }

  spread {
    attribute = "${node.datacenter}"
    weight    = 100

    target "us-east-1" {
      percent = 60
    }

    target "us-west-2" {
      percent = 40
    }
  }

  group "frontend" {
    count = 4

    network {
      port "http" {}
    }

    service {
      name        = "web"
      port        = "http"
      tags        = ["frontend"]
      canary_tags = ["canary"]

      check {
        type     = "http"
        path     = "/"
        interval = "5s"
        timeout  = "1s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "nginx" {
      driver = "docker"

      config {
        image = "nginx:1.27"
        ports = ["http"]
      }

      template {
        data          = "server { listen {{ env \"NOMAD_PORT_http\" }}; }"
        destination   = "local/nginx.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }
    }
  }
}
