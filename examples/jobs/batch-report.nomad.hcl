# A batch job with an artifact, a template and a restart/reschedule policy.
variable "report_date" {
  type    = string
  default = "today"
}

job "batch-report" {
  datacenters = ["dc1", "dc2"]
  type        = "batch"
  priority    = 30

  group "report" {
    restart {
      attempts = 1
      delay    = "30s"
      interval = "10m"
      mode     = "fail"
    }

    reschedule {
      attempts  = 2
      interval  = "1h"
      delay     = "1m"
      unlimited = false
    }

    task "build" {
      driver = "exec"

      artifact {
        source      = "https://example.com/tools/report.tar.gz"
        destination = "local/tools"
        options {
          checksum = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        }
      }

      template {
        data        = <<EOT
REPORT_DATE=${var.report_date}
DB_HOST={{ range service "postgres" }}{{ .Address }}{{ end }}
EOT
        destination = "local/report.env"
        env         = true
      }

      config {
        command = "local/tools/report"
        args    = ["--date", "${NOMAD_META_report_date}"]
      }

      meta {
        report_date = "${var.report_date}"
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
