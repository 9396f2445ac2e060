queues = {
  emails     = { count = 3, cpu = 200 }
  thumbnails = { count = 2, cpu = 500 }
}
