# A periodic batch job: two cron schedules, no overlapping runs.
job "nightly-backup" {
  type = "batch"

  periodic {
    crons            = ["0 2 * * *", "30 14 * * 6"]
    prohibit_overlap = true
    time_zone        = "Europe/Berlin"
  }

  group "backup" {
    task "dump" {
      driver = "docker"

      config {
        image   = "postgres:16"
        command = "pg_dumpall"
      }

      kill_timeout = "2m"
    }
  }
}
