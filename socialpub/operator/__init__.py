"""The socialpub operator: ``kopf run -m socialpub.operator`` (or ``socialpub operator``).

Importing the package registers the kopf handlers.
"""

from socialpub.operator import handlers as handlers
