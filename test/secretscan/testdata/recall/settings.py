"""Settings for the billing service (read by tools/read_file)."""
import os

DEBUG = False
ALLOWED_HOSTS = ["billing.internal"]

# Third-party credentials, hard-coded "for now".
STRIPE_SECRET_KEY = "sk_live_aaV6mW8q6eJUUpigA3zC0suJqeSBsPo3BhE5pgenhvnkRfPw"
OPENAI_API_KEY = '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'
SENDGRID_API_KEY = "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"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "billing",
        "USER": "billing_app",
        "PASSWORD": "t%aULpS23ZAy#xoC",
        "HOST": "db.billing.internal",
    }
}

SECRET_KEY = "DjrSuz6Gi0HSZnrVgR7LCGN6HM0d81yQ"
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
