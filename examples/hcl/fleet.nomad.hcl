# A fleet of workers from one file: variables with validation, locals, functions, a `for`
# expression, `dynamic` groups and templates, as Nomad's own parser evaluates them.
# Load:   nomadmesh render examples/hcl/fleet.nomad.hcl -var-file examples/hcl/prod.vars.hcl
# Format: nomadmesh fmt -check examples/hcl

variable "image" {
  type        = string
  description = "The worker image"
  default     = "registry.example.com/worker:1.4"
}

variable "queues" {
  type = map(object({
    count = number
    cpu   = number
  }))
  default = {
    emails = { count = 2, cpu = 200 }
  }

  validation {
    condition     = min([for q in values(var.queues) : q.count]...) > 0
    error_message = "Every queue needs at least one worker."
  }
}

locals {
  labels = { team = "platform", tier = lower("BACKGROUND") }
  config = yamlencode({ queues = keys(var.queues), retries = 3 })
}

job "fleet" {
  datacenters = ["dc1"]
  type        = "service"

  meta = {
    "team.name" = local.labels.team
    queues      = join(",", sort(keys(var.queues)))
  }

  dynamic "group" {
    for_each = var.queues
    labels   = ["worker-${group.key}"]

    content {
      count = group.value.count

      task "worker" {
        driver = "docker"

        config {
          image = var.image
          args  = ["--queue", group.key, "--data", "${NOMAD_ALLOC_DIR}/data"]
        }

        env {
          QUEUE = upper(group.key)
          TIER  = local.labels.tier
        }

        template {
          destination = "local/worker.yaml"
          data        = <<-EOT
            # rendered by Nomad's parser, then by consul-template at run time
            ${local.config}
            node: {{ env "node.unique.name" }}
          EOT
        }

        resources {
          cpu    = group.value.cpu
          memory = max(128, group.value.cpu)
        }
      }
    }
  }
}
