"""A test function: records every event it receives; fails on purpose when FAIL is set."""

import json
import os


def handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({"event": event, "function_name": context.function_name}) + "\n")
    if os.environ.get("FAIL"):
        raise RuntimeError("failing on purpose")
    return {"batchItemFailures": []}
