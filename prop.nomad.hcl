variable "v" {
  default = "from-var"
}

locals {
  n = 3
  s = "str"
  l = ["x", "y", 1]
  m = { a = 1, b = "two" }
}

job "prop" {
  group "g" {
    task "t" {
      driver = "docker"

      config {
        value = (true ? [0] : split("","")[*][0])
      }
    }
  }
}
