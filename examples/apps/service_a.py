"""service-a: answers every path with who it is (the original design's upstream)."""

from tiny import identity, serve

if __name__ == "__main__":
    serve(lambda path: {**identity("service-a"), "path": path})
