# A parameterized job dispatched with a payload and metadata.
job "thumbnail" {
  type = "batch"

  parameterized {
    payload       = "required"
    meta_required = ["image_id"]
    meta_optional = ["size"]
  }

  group "thumbnail" {
    task "resize" {
      driver = "docker"

      config {
        image = "thumbnailer:2"
        args  = ["--id", "${NOMAD_META_image_id}", "--size", "${NOMAD_META_size}"]
      }

      dispatch_payload {
        file = "input.jpg"
      }
    }
  }
}
