import { accountRoutes } from '../accounts/routes.js';
import { tokenRoutes } from '../tokens/routes.js';
import { deviceRoutes } from '../devices/routes.js';
import { licenseRoutes } from '../licenses/routes.js';
import { eventRoutes } from '../events/routes.js';
import { alertRoutes } from '../alerts/routes.js';
import { rumRoutes } from '../rum/routes.js';
import { reportRoutes } from '../reports/routes.js';
import { exchangeRoutes } from '../exchange/routes.js';
import { timeRoutes } from '../time/routes.js';
import { syncEnrollmentRoutes, syncRoutes } from '../sync/routes.js';
import { ciscoRoutes } from '../cisco/routes.js';
import { reservationRoutes } from '../cssm/reservation-routes.js';
import type { Route } from './route.js';
import { systemRoutes } from './system-routes.js';
import { userRoutes } from '../users/routes.js';
import { metricsRoutes } from '../metrics/routes.js';
import { backupRoutes } from '../backup/routes.js';
import { historyRoutes } from '../history/routes.js';
import { consoleRoutes } from './console-routes.js';
import { overviewRoutes } from '../overview/routes.js';
import { notifyRoutes } from '../notify/routes.js';
import { accessRoutes } from '../access/routes.js';
import { labelRoutes } from '../labels/routes.js';

/** The one table of operator routes, under /api/v1 (the system routes' /healthz at the root). */
export const routes: Route[] = [
  ...systemRoutes(() => routes),
  ...metricsRoutes,
  ...overviewRoutes,
  ...userRoutes,
  ...accessRoutes,
  ...accountRoutes,
  ...tokenRoutes,
  ...deviceRoutes,
  ...licenseRoutes,
  ...labelRoutes,
  ...historyRoutes,
  ...rumRoutes,
  ...reportRoutes,
  ...exchangeRoutes,
  ...syncRoutes,
  ...syncEnrollmentRoutes,
  ...ciscoRoutes,
  ...reservationRoutes,
  ...eventRoutes,
  ...alertRoutes,
  ...notifyRoutes,
  ...timeRoutes,
  ...backupRoutes,
  ...consoleRoutes,
];
