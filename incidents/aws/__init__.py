"""The portal's one door to AWS: `client` holds every boto3 client, call and error translation, `requests` builds
what StartIncident and UpdateRelatedItems receive, `ratelimit` spreads StartIncident calls under a shared limit."""
