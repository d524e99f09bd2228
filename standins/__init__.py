"""What both laptop stacks (native and compose) run in place of AWS services: the dispatcher
(the SQS event source mapping), the bootstrap (the template's resources), gunicorn serving
(API Gateway) and the web page server (the static site)."""
