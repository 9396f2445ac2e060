"""placeholder"""
def canonicalize(job):
    return job
