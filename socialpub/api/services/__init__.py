"""The api's logic, between thin routes and the Kubernetes API."""
