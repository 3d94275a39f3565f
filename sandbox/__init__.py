"""A local AWS sandbox for development and tests: an ssm-incidents emulator plus moto's S3 on one endpoint.

Start it with ``python -m sandbox`` (or ``python manage.py sandbox``), or from Python::

    from sandbox.server import Sandbox
    sb = Sandbox(port=0).start()
    ...
    sb.stop()

See sandbox/README.md for the behaviours it chose where AWS is silent and for the ``/_sandbox/`` control API.
"""
