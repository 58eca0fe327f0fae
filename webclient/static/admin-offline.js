// admin-offline: added by its flow; listens for the page's qrauth:* events.
'use strict';
