# A system job on every Linux node, with a host network static port.
job "node-exporter" {
  type = "system"

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "exporter" {
    network {
      port "metrics" {
        static = 9100
      }
    }

    service {
      name = "node-exporter"
      port = "metrics"
      tags = ["prometheus"]

      check {
        type     = "tcp"
        interval = "15s"
        timeout  = "3s"
      }
    }

    task "node-exporter" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/node_exporter"
        args    = ["--web.listen-address=:${NOMAD_PORT_metrics}"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
