-- Argo CD health check for weir.dev/Microservice.
--
-- Install it in the argocd-cm ConfigMap under the key
--   resource.customizations.health.weir.dev_Microservice
-- (see docs/gitops.md). Argo CD runs it in its Lua 5.1 VM with the live object in `obj`.
--
--   Healthy      phase Healthy, and Weir has seen the newest spec
--   Progressing  a rollout or a release runs, or Weir has not yet seen the newest spec
--   Suspended    phase Paused: a release waits for `kubectl weir promote` (or was paused)
--   Degraded     phase Degraded: an abort, a failed analysis, a stalled rollout, a name
--                conflict; the message is Weir's own
local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Weir to report on this Microservice"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Weir to act on generation " .. tostring(generation)
  return hs
end

local message = status.message or ""
local phase = status.phase

-- A status written before `phase` existed: read the conditions instead.
if phase == nil then
  local degraded = condition(status, "Degraded")
  local ready = condition(status, "Ready")
  if degraded ~= nil and degraded.status == "True" then
    phase = "Degraded"
    message = degraded.message or message
  elseif ready ~= nil and ready.status == "True" then
    phase = "Healthy"
  else
    phase = "Progressing"
  end
end

if phase == "Healthy" then
  hs.status = "Healthy"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif phase == "Degraded" then
  hs.status = "Degraded"
elseif phase == "Progressing" then
  hs.status = "Progressing"
else
  hs.status = "Unknown"
  message = "Unknown phase " .. tostring(phase) .. ". " .. message
end
hs.message = message
return hs
