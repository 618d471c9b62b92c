# want
ARG NPM_TOKEN
FROM node:20-alpine
# want
ARG API_KEY=dev-key
RUN npm ci
