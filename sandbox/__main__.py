"""``python -m sandbox --host 127.0.0.1 --port 4566 [--seed-demo] [--bucket NAME]``."""

import argparse

from .server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Serve the ssm-incidents emulator and moto's S3 on one local AWS endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4566, help="port to listen on (default 4566; 0 picks one)")
    parser.add_argument("--seed-demo", action="store_true", help="create demo response plans and the bucket")
    parser.add_argument("--bucket", help="S3 bucket to create (default with --seed-demo: incident-portal-attachments)")
    args = parser.parse_args(argv)
    run(host=args.host, port=args.port, seed_demo=args.seed_demo, bucket=args.bucket)


if __name__ == "__main__":
    main()
