// What the signed-in token may do: read sees, write also controls, admin also configures; a softphone
// token controls calls as write does (and registers its one line: calld.domain.scopes).
const RANK = { read: 0, write: 1, softphone: 1, admin: 2 };

export function allows(scope, needed) {
  return (RANK[scope] ?? -1) >= RANK[needed];
}

export const actionsAllowed = (scope) => allows(scope, "write");
export const configAllowed = (scope) => allows(scope, "admin");
